"""Properties of the KIR classifier: B genes only add B content, and untested genes are never guessed."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from decidua.immunogenetics.kir import (
    ACTIVATING,
    B_GENES,
    LOCI,
    BContentGroup,
    Call,
    KirGene,
    KirGenotype,
    KirMotif,
    KirProfile,
    calls_from_csv_row,
    calls_from_lists,
    classify,
)

Typing = dict[KirGene, Call]

typings = st.fixed_dictionaries({gene: st.sampled_from(list(Call)) for gene in LOCI})
complete_typings = st.fixed_dictionaries({gene: st.sampled_from([Call.PRESENT, Call.ABSENT]) for gene in LOCI})


def profile_of(typing: Typing) -> KirProfile:
    def genes(call: Call) -> list[str]:
        return [g.value for g, c in typing.items() if c is call]

    return classify(calls_from_lists(genes(Call.PRESENT), genes(Call.ABSENT), genes(Call.UNTESTED)))


_B_MOTIFS = {KirMotif.AA: 0, KirMotif.AB: 1, KirMotif.BB: 2}


@given(typings, st.sampled_from(B_GENES))
def test_adding_a_b_gene_never_turns_bx_into_aa(typing: Typing, gene: KirGene) -> None:
    before = profile_of(typing).genotype
    after = profile_of({**typing, gene: Call.PRESENT}).genotype
    assert after is KirGenotype.BX
    assert not (before is KirGenotype.BX and after is KirGenotype.AA)


@given(typings, st.sampled_from([KirGene.KIR2DL2, KirGene.KIR2DS2, KirGene.KIR3DS1, KirGene.KIR2DS1]))
def test_adding_a_b_motif_gene_never_lowers_b_content(typing: Typing, gene: KirGene) -> None:
    before = profile_of(typing)
    after = profile_of({**typing, gene: Call.PRESENT})
    if before.b_content is not None and after.b_content is not None:
        assert after.b_content >= before.b_content


@given(typings, st.data())
def test_untested_genes_are_never_guessed(typing: Typing, data: st.DataObject) -> None:
    """Whatever an untested gene turns out to be, a value reported as determined stays the same."""
    before = profile_of(typing)
    untested = [g for g, c in typing.items() if c is Call.UNTESTED]
    if not untested:
        return
    gene = data.draw(st.sampled_from(untested))
    resolved = data.draw(st.sampled_from([Call.PRESENT, Call.ABSENT]))
    after = profile_of({**typing, gene: resolved})
    for name in ("genotype", "cen", "tel", "b_content", "b_content_group", "activating_count", "has_2ds1"):
        value = getattr(before, name)
        if value is not None:
            assert getattr(after, name) == value, name
    for name in ("has_c1_receptor", "has_c2_receptor"):
        if getattr(before, name) is not None:
            assert getattr(after, name) == getattr(before, name)


@given(typings)
def test_undetermined_values_have_a_reason_and_scores_are_consistent(typing: Typing) -> None:
    profile = profile_of(typing)
    record = profile.to_record()
    for name in ("genotype", "cen", "tel", "b_content", "b_content_group", "activating_count"):
        if record[name] is None:
            assert any(w.startswith(f"{name} undetermined") for w in profile.warnings), name
    if profile.cen is not None and profile.tel is not None:
        assert profile.b_content == _B_MOTIFS[profile.cen] + _B_MOTIFS[profile.tel]
        assert 0 <= profile.b_content <= 4
    if profile.cen is KirMotif.BB:
        assert profile.b_content_group is BContentGroup.BEST
    elif profile.b_content is not None:
        expected = BContentGroup.BETTER if profile.b_content >= 2 else BContentGroup.NEUTRAL
        assert profile.b_content_group is expected
    if profile.activating_count is not None:
        assert profile.activating_count == sum(typing[g] is Call.PRESENT for g in ACTIVATING)
    assert json.loads(json.dumps(record)) == record


@given(complete_typings)
def test_a_complete_typing_always_has_genotype_and_activating_count(typing: Typing) -> None:
    profile = profile_of(typing)
    assert profile.genotype is not None
    assert profile.activating_count is not None
    assert (profile.genotype is KirGenotype.AA) == all(typing[g] is Call.ABSENT for g in B_GENES)


@given(typings)
def test_csv_rows_and_lists_agree(typing: Typing) -> None:
    cell = {Call.PRESENT: "1", Call.ABSENT: "0", Call.UNTESTED: "NT"}
    row = {g.value: cell[c] for g, c in typing.items()}
    assert classify(calls_from_csv_row(row)) == profile_of(typing)
