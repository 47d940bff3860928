"""HubL read the way HubSpot's Jinjava reads it (issue #22): quotes, tag names, scopes."""

from __future__ import annotations

from typing import Any

from templator.hubspot.hubl import read_hubl

FIELDS: list[Any] = [
    {
        "name": "hero",
        "label": "Hero",
        "type": "group",
        "children": [{"name": "title", "label": "Title", "type": "text"}],
    },
    {
        "name": "cards",
        "label": "Cards",
        "type": "group",
        "occurrence": {"min": 1},
        "children": [
            {"name": "title", "label": "Title", "type": "text"},
            {"name": "body", "label": "Body", "type": "richtext"},
        ],
    },
]
ALL = "{{ module.hero }}{{ module.cards }}"


def issues(html: str, **kwargs: Any) -> list[tuple[str, int]]:
    return [(i.code, i.line) for i in read_hubl(html, FIELDS, **kwargs).issues]


def test_a_tag_does_not_end_at_a_percent_brace_inside_a_string() -> None:
    assert issues('{% set x = "{% if a %}y{% endif %}" %}' + ALL) == []


def test_setting_an_attribute_is_not_a_block_set() -> None:
    assert issues('{% set o = {"a": 1} %}{% set o.b = true %}' + ALL) == []


def test_a_tag_name_ends_at_a_comma_as_in_jinjava() -> None:
    html = '{% require_js, position="footer" %}<script></script>{% end_require_js %}' + ALL
    assert issues(html) == []


def test_a_set_inside_a_macro_leaves_the_alias_outside_alone() -> None:
    html = (
        "{% set h = module.hero %}{% macro m(x) %}{% set h = x %}{% endmacro %}"
        "{{ h.title }}{{ module.cards }}"
    )
    assert ("hero", "title") in read_hubl(html, FIELDS).used


def test_a_set_inside_a_loop_leaves_the_alias_outside_alone() -> None:
    html = (
        "{% set t = module.hero %}{% for c in module.cards %}{% set t = c %}"
        "{{ c.title }}{{ c.body }}{% endfor %}{{ t.title }}"
    )
    assert ("hero", "title") in read_hubl(html, FIELDS).used


def test_a_macro_argument_shadows_an_outer_alias() -> None:
    html = (
        "{% set item = module.hero %}{% macro m(item) %}{{ item.body }}{% endmacro %}"
        "{{ item.title }}{{ module.cards }}"
    )
    assert issues(html) == []


def test_a_with_block_binds_its_names() -> None:
    report = read_hubl("{% with h = module.hero %}{{ h.title }}{% endwith %}", FIELDS)
    assert ("hero", "title") in report.used and ("hero",) not in report.whole


def test_do_reads_the_fields_it_is_given() -> None:
    html = (
        "{% set l = [] %}{% for c in module.cards|selectattr('title') %}"
        "{% do l.append(c.title ~ c.body) %}{% endfor %}"
    )
    assert {("cards", "title"), ("cards", "body")} <= read_hubl(html, FIELDS).used


def test_module_data_query_is_provided_when_a_query_is_bound() -> None:
    html = "{{ module.data_query.data.CRM.items }}" + ALL
    assert issues(html, provided=frozenset({"data_query"})) == []
    assert issues(html) == [("unknown_field", 1)]


def test_each_bad_argument_of_a_tag_is_reported_on_its_own_line() -> None:
    html = '{% module "b"\n  a=module.nope1\n  b=module.nope2\n%}' + ALL
    assert issues(html) == [("unknown_field", 2), ("unknown_field", 3)]


def test_hubl_inside_a_tag_argument_string_is_read() -> None:
    html = '{% inline_text field="title" value="{{ module.hero.title }}" %}'
    assert ("hero", "title") in read_hubl(html, FIELDS).used


def test_jinjava_operators_jinja_does_not_know_are_read_past() -> None:
    html = "{% if module.hero.title && !module.cards %}x{% endif %}"
    assert issues(html) == []
    assert ("hero", "title") in read_hubl(html, FIELDS).used


def test_an_unclosed_raw_block_and_a_stray_bracket_are_reported() -> None:
    assert issues("{% raw %}{{ x }}" + ALL) == [("unbalanced_tag", 1)]
    assert issues("{{ module.hero) }}") == [("hubl_syntax", 1)]


def test_characters_jinja_refuses_are_read_past_in_every_tag_at_once() -> None:
    html = "{{ a $ b @ c }}{{ module.hero.title }}\n" * 500 + "{{ module.cards }}"
    report = read_hubl(html, FIELDS)
    assert report.issues == [] and ("hero", "title") in report.used


def test_past_the_repair_limit_the_rest_is_reported_not_silently_skipped() -> None:
    from templator.hubspot.hubl_tokens import MAX_REPAIRS

    html = "".join(f"{{{{ a {chr(0x2200 + i)} }}}}" for i in range(MAX_REPAIRS + 1))
    assert [i.code for i in read_hubl(html, FIELDS).issues] == ["hubl_syntax"]
