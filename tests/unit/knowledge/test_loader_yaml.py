"""The knowledge base is read with libyaml's parser when PyYAML has it (10x faster than the pure-Python one, which
was half of ``decidua assess``'s start-up): the same data, the same errors."""

from __future__ import annotations

import pytest
import yaml

from decidua.core.errors import KnowledgeBaseError
from decidua.knowledge import loader
from decidua.knowledge.loader import KnowledgeBase, _shipped_sources, build, parse_override
from decidua.knowledge.schema import KnowledgeBaseFile


def test_the_fast_parser_is_used_where_pyyaml_has_it() -> None:
    assert loader._SafeLoader is (yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader)


def test_the_shipped_files_read_the_same_with_either_parser(kb: KnowledgeBase) -> None:
    for origin, text in _shipped_sources():
        assert loader._read_yaml(text, origin) == yaml.load(text, Loader=yaml.SafeLoader), origin
    pure = build(
        [KnowledgeBaseFile.model_validate(yaml.load(text, Loader=yaml.SafeLoader)) for _, text in _shipped_sources()]
    )
    assert pure == kb


@pytest.mark.parametrize(
    "text",
    ["name: [unclosed", "a: b: c", "- a\nb: c", "x: *undefined_alias", "\tname: tab"],
    ids=["unclosed", "nested mapping", "list then mapping", "undefined alias", "tab"],
)
def test_invalid_yaml_is_a_knowledge_base_error(text: str) -> None:
    with pytest.raises(yaml.YAMLError):
        yaml.load(text, Loader=yaml.SafeLoader)  # invalid for the pure-Python parser too
    with pytest.raises(KnowledgeBaseError, match=r"^local\.yaml: not valid YAML"):
        parse_override(text, "local.yaml")


def test_yaml_tags_for_python_objects_are_refused() -> None:
    with pytest.raises(KnowledgeBaseError, match="not valid YAML"):
        parse_override("name: !!python/object/apply:os.system ['true']", "local.yaml")
