"""HubL's tags as the reader needs them: which are blocks, which open a scope, which may
stand in the middle of a block, and the filters that keep a value's shape.

Jinja's own block tags, plus the HubL ones HubSpot documents with an end tag
(`{% require_css %}…{% end_require_css %}`, the drag-and-drop `dnd_*` areas, widget and
module blocks). A tag not listed stands alone, as HubSpot's `module`, `icon`, `cta`… do.
"""

from __future__ import annotations

BLOCK_TAGS = frozenset(
    {
        "if",
        "for",
        "macro",
        "call",
        "filter",
        "unless",
        "block",
        "with",
        "raw",
        "autoescape",
        "ifchanged",
        "scope_css",
        "require_css",
        "require_js",
        "require_head",
        "widget_block",
        "widget_attribute",
        "module_block",
        "module_attribute",
        "dnd_area",
        "dnd_section",
        "dnd_column",
        "dnd_row",
        "dnd_module",
    }
)
# Tags whose body has names of its own (Jinjava's ForTag enters a scope; a macro body runs
# in the macro's; `with`, `call`, `filter` as in Jinja): a `set` inside stays inside.
SCOPE_TAGS = frozenset({"for", "macro", "with", "call", "filter"})
MIDDLE_TAGS = {"elif": {"if", "unless"}, "else": {"if", "unless", "for"}, "empty": {"for"}}
# `module.items|sort(attribute="x")` is still the items: an alias follows it.
SHAPE_FILTERS = frozenset(
    {
        "sort",
        "reverse",
        "list",
        "selectattr",
        "rejectattr",
        "unique",
        "default",
        "d",
        "first",
        "last",
    }
)
