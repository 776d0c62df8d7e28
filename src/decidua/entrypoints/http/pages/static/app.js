// decidua: repeatable rows in the case form (add / remove); no other script is needed.
"use strict";
document.addEventListener("click", (event) => {
  const add = event.target.closest(".add-row");
  if (add) {
    const section = add.dataset.section;
    const template = document.getElementById("template-" + section);
    const body = document.querySelector('table.rows[data-section="' + section + '"] tbody');
    const index = Number(add.dataset.next || "0");
    add.dataset.next = String(index + 1);
    const html = template.innerHTML.replaceAll("__i__", String(index));
    body.insertAdjacentHTML("beforeend", html);
    const fieldset = add.closest("fieldset");
    const recorded = fieldset && fieldset.querySelector("input.recorded");
    if (recorded) recorded.checked = true;
    const first = body.lastElementChild && body.lastElementChild.querySelector("input, select");
    if (first) first.focus();
    return;
  }
  const remove = event.target.closest(".remove-row");
  if (remove) remove.closest("tr").remove();
});
