"""HubSpot module configuration (meta.json and fields.json): a typed view over raw JSON.

HubSpot owns this format and adds keys over time, and `hs fetch` writes keys no
reference documents. So the module's JSON is kept exactly as written, and these models
only *validate a view* of it: the keys we use are typed and checked (a bad field name,
a missing required property of a field type, a content type that does not exist, a
repeater whose min exceeds its max…); every other key is allowed (`extra="allow"`) and
reported as a warning, with the closest known key when it looks like a typo.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
    field_validator,
    model_validator,
)

CONTENT_TYPES = (
    "ANY",
    "LANDING_PAGE",
    "SITE_PAGE",
    "BLOG_POST",
    "BLOG_LISTING",
    "EMAIL",
    "KNOWLEDGE_BASE",
    "QUOTE_TEMPLATE",
    "CUSTOMER_PORTAL",
    "WEB_INTERACTIVE",
    "SUBSCRIPTION",
    "MEMBERSHIP",
)
# `hs fetch` writes ["ANY"] for clones of HubSpot's default modules.
HOST_TEMPLATE_TYPES = ("ANY", "PAGE", "BLOG_POST", "BLOG_LISTING", "EMAIL", "QUOTE_TEMPLATE")
# Keys HubSpot's own tools write (Design Manager, `hs fetch`, the module editor) that no
# reference documents: kept as written and never warned of, at any level.
HUBSPOT_KEYS = frozenset(
    {
        "placeholder",
        "embed_versions",
        "portal_id",
        "id",
        "cloned_from",
        "cloned_from_module_id",
        "contains_overridable_hubl_tags",
        "hierarchical",
        "max_depth",
        "sortable",
        "validation_regex",
        "allow_new_line",
        "show_emoji_picker",
        "display_width",
        "default_ordering",
        "created_at",
        "updated_at",
        "path",
        "folder_id",
        "data_query_path",
        "is_theme_module",
        "theme_path",
        "type_of_module",
        "global_module",
        "hide_in_editor",
        "editable",
        "resizable",
        "show_advanced_options",
    }
)
# HubSpot: "cannot contain spaces or special characters".
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_]{1,100}$")
HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$")


# The schema lists the names; the validators below refuse others with a "did you mean".
ContentType = Annotated[str, WithJsonSchema({"type": "string", "enum": list(CONTENT_TYPES)})]
HostTemplateType = Annotated[
    str, WithJsonSchema({"type": "string", "enum": list(HOST_TEMPLATE_TYPES)})
]


class _View(BaseModel):
    """Typed where we look, permissive elsewhere: unknown keys stay (and are warned of)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


def _one_of(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        from difflib import get_close_matches

        close = get_close_matches(value, allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (one of {', '.join(allowed)})"
        raise ValueError(f"{what} {value!r} does not exist{hint}")
    return value


class ModuleMeta(_View):
    """meta.json: the keys HubSpot documents, and those the Design Manager writes."""

    # `hs fetch` leaves `label` out for Design Manager modules; older tools wrote null.
    label: str | None = Field(default=None, max_length=1000)
    icon: str | None = None
    data_query_path: str | None = None
    module_id: int | None = None
    is_available_for_new_content: bool | None = None
    global_: bool | None = Field(default=None, alias="global")
    content_types: list[ContentType] | None = None
    host_template_types: list[HostTemplateType] | None = None
    css_assets: list[Any] | None = None
    css_render_options: dict[str, Any] | None = None
    js_assets: list[Any] | None = None
    js_render_options: dict[str, Any] | None = None
    external_js: list[Any] | None = None
    other_assets: list[Any] | None = None
    smart_type: str | None = None
    tags: list[Any] | None = None
    categories: list[Any] | None = None
    content_tags: list[Any] | None = None
    editable_contexts: list[Any] | None = None
    extra_classes: str | None = None
    placement_rules: list[Any] | None = None
    purchased: bool | None = None
    wrap_field_tag: str | None = None
    help_text: str | None = None
    master_language: str | None = None
    placeholder: dict[str, Any] | None = None
    parent_id: int | None = None
    smart_objects: list[Any] | None = None

    @field_validator("content_types")
    @classmethod
    def _known_content_types(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            _one_of(item, CONTENT_TYPES, "content type")
        return value

    @field_validator("host_template_types")
    @classmethod
    def _known_host_types(cls, value: list[str] | None) -> list[str] | None:
        for item in value or []:
            _one_of(item, HOST_TEMPLATE_TYPES, "host template type")
        return value

    @model_validator(mode="after")
    def _where_used(self) -> ModuleMeta:
        if not self.content_types and not self.host_template_types:
            raise ValueError("set content_types (or the legacy host_template_types)")
        return self


class Occurrence(_View):
    """Repeater settings of a field: `min` at most `max`."""

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=1)
    sorting_label_field: str | None = None
    default: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> Occurrence:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"occurrence min ({self.min}) is greater than max ({self.max})")
        return self


class Visibility(_View):
    """Conditional visibility of a field."""

    controlling_field: str | None = None
    controlling_field_path: str | None = None
    controlling_value_regex: str | None = None
    operator: str | None = None
    property: str | None = None
    access: dict[str, Any] | None = None
    hidden_subfields: dict[str, Any] | None = None


class _FieldBase(_View):
    # The pattern in the schema; the validator below says what is wrong in words.
    name: str = Field(json_schema_extra={"pattern": NAME_PATTERN.pattern})
    label: str = Field(max_length=1000)
    required: bool | None = None
    locked: bool | None = None
    id: str | None = None
    help_text: str | None = None
    inline_help_text: str | None = None
    display_width: str | None = None
    visibility: Visibility | None = None
    visibility_rules: str | None = None
    advanced_visibility: dict[str, Any] | None = None
    occurrence: Occurrence | None = None
    alias_mapping: dict[str, Any] | None = None
    inherited_value: dict[str, Any] | None = None
    default: Any = None

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"field name {value!r} must be 1-100 letters, digits or _ (no spaces)")
        return value

    def defaults(self) -> list[Any]:
        """The default values to check: each item of a repeater's list, else the one."""
        if self.occurrence is not None and isinstance(self.default, list):
            return [d for d in self.default if d is not None]
        return [] if self.default is None else [self.default]


class TextField(_FieldBase):
    """Single-line text."""

    type: Literal["text"]
    validation_regex: str | None = None
    allow_new_line: bool | None = None
    show_emoji_picker: bool | None = None
    placeholder: str | None = None


class RichTextField(_FieldBase):
    """Rich text (HTML)."""

    type: Literal["richtext"]
    enabled_features: list[str] | None = None


class ImageDefault(_View):
    """An image field's default (kept loose: HubSpot adds sizing keys)."""

    src: str | None = None
    alt: str | None = None
    width: int | None = None
    height: int | None = None
    size_type: str | None = None
    loading: str | None = None
    max_width: int | None = None
    max_height: int | None = None


class ImageField(_FieldBase):
    """An image: a default is an object (text `src` and `alt`, integer `width` and
    `height`…), or a list of them for a repeater."""

    type: Literal["image"]
    responsive: bool | None = None
    resizable: bool | None = None
    show_loading: bool | None = None

    @model_validator(mode="after")
    def _image_defaults(self) -> ImageField:
        for value in self.defaults():
            ImageDefault.model_validate(value)
        return self


class UrlField(_FieldBase):
    """A URL."""

    type: Literal["url"]
    supported_types: list[str] | None = None


class LinkField(_FieldBase):
    """A link (URL plus target options)."""

    type: Literal["link"]
    supported_types: list[str] | None = None
    show_advanced_rel_options: bool | None = None


class BooleanField(_FieldBase):
    """A checkbox or toggle."""

    type: Literal["boolean"]
    display: str | None = None


class NumberField(_FieldBase):
    """A number: `min` at most `max`, and a default that is a number between them."""

    type: Literal["number"]
    min: float | None = None
    max: float | None = None
    step: float | None = Field(default=None, gt=0)
    display: str | None = None
    prefix: str | None = None
    suffix: str | None = None
    placeholder: str | None = None

    @model_validator(mode="after")
    def _range(self) -> NumberField:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is greater than max ({self.max:g})")
        for value in self.defaults():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"default {value!r} is not a number")
            if (self.min is not None and value < self.min) or (
                self.max is not None and value > self.max
            ):
                raise ValueError(f"default {value:g} is outside min/max")
        return self


class ChoiceField(_FieldBase):
    """A choice among [value, label] pairs: a default is one of the values (or a list of
    them)."""

    type: Literal["choice"]
    choices: list[list[Any]] = Field(
        json_schema_extra={"items": {"type": "array", "minItems": 2, "maxItems": 2}}
    )
    multiple: bool | None = None
    display: str | None = None
    reordering_enabled: bool | None = None
    placeholder: str | None = None
    preset: str | None = None

    @field_validator("choices")
    @classmethod
    def _pairs(cls, choices: list[list[Any]]) -> list[list[Any]]:
        for i, pair in enumerate(choices):
            if len(pair) != 2:
                raise ValueError(f"choice {i} must be a [value, label] pair")
        return choices

    @model_validator(mode="after")
    def _default_is_a_choice(self) -> ChoiceField:
        values = {str(value) for value, _ in self.choices}
        chosen: list[Any] = []
        for value in self.defaults():
            chosen += value if isinstance(value, list) else [value]
        # "" is HubSpot's "nothing selected" (the Design Manager writes it so).
        unknown = [v for v in chosen if v != "" and str(v) not in values]
        if unknown:
            raise ValueError(f"default {unknown[0]!r} is not one of the choices")
        return self


class ColorField(_FieldBase):
    """A color with opacity: a default's `color` is a hex color like #ff0000."""

    type: Literal["color"]
    show_opacity: bool | None = None

    @model_validator(mode="after")
    def _hex(self) -> ColorField:
        for value in self.defaults():
            color = value.get("color") if isinstance(value, dict) else None
            if isinstance(color, str) and color and not HEX_COLOR.match(color):
                raise ValueError(f"color {color!r} must be a hex color like #ff0000")
        return self


class FontField(_FieldBase):
    """A font (family, size, style)."""

    type: Literal["font"]
    load_external_fonts: bool | None = None
    visibility_options: dict[str, Any] | None = None
    variant: str | None = None


class HubDbRowField(_FieldBase):
    """A HubDB row: needs its table."""

    type: Literal["hubdbrow"]
    table_name_or_id: str | int
    columns_to_fetch: list[str] | None = None
    display_columns: list[str] | None = None
    display_format: str | None = None


class CrmObjectField(_FieldBase):
    """A CRM object instance: needs its object type."""

    type: Literal["crmobject"]
    object_type: str
    properties_to_fetch: list[str] | None = None


class CrmObjectPropertyField(_FieldBase):
    """A CRM object property: needs its object type."""

    type: Literal["crmobjectproperty"]
    object_type: str
    placeholder: str | None = None


# The rest of HubSpot's field reference: no required property beyond the common ones.
OTHER_TYPES = (
    "alignment",
    "backgroundimage",
    "blog",
    "border",
    "cta",
    "date",
    "datetime",
    "email",
    "embed",
    "file",
    "followupemail",
    "form",
    "gradient",
    "hubdbtable",
    "hubspotvideo",
    "icon",
    "logo",
    "meeting",
    "menu",
    "page",
    "payment",
    "product",
    "simplemenu",
    "spacing",
    "tag",
    "textalignment",
    "video",
    "videoplayer",
)


class OtherField(_FieldBase):
    """The remaining documented field types, with their documented properties."""

    type: Literal[OTHER_TYPES]  # type: ignore[valid-type]
    # Properties some of these types document (typed loosely; any other key is kept).
    alignment_direction: str | None = None
    allow_custom_border_sides: bool | None = None
    limits: dict[str, Any] | None = None
    picker: str | None = None
    placeholder: str | None = None
    icon_set: str | None = None
    tag_value: str | None = None
    show_loading: bool | None = None
    show_advanced_options: bool | None = None
    supported_source_types: list[str] | None = None
    supported_oembed_types: list[str] | None = None
    supported_media_bridge_providers: list[Any] | None = None
    disable_inline_form_editing: bool | None = None
    required_property_types: list[str] | None = None
    embed_type: str | None = None


CORE_TYPES = (
    "text",
    "richtext",
    "image",
    "url",
    "link",
    "boolean",
    "number",
    "choice",
    "color",
    "font",
    "hubdbrow",
    "crmobject",
    "crmobjectproperty",
    "group",
)


class UnknownTypeField(_FieldBase):
    """A field type outside the reference we model (`html`, `hubl`, `audioplayer`,
    `podcast`, `salesforcecampaign`, or one HubSpot added since): kept as written, warned
    of, its properties not checked."""

    # In the schema: any type but the modelled ones (whose own schemas apply).
    type: Annotated[
        str, WithJsonSchema({"type": "string", "not": {"enum": [*CORE_TYPES, *OTHER_TYPES]}})
    ]


class GroupField(_FieldBase):
    """A group of fields (nested groups and repeaters allowed), with distinct names, at
    most 32 groups deep."""

    type: Literal["group"]
    children: list[Field_]
    expanded: bool | None = None
    tab: str | None = None
    group_occurrence_meta: dict[str, Any] | None = None
    display: str | None = None

    @field_validator("children")
    @classmethod
    def _unique_children(cls, children: list[Field_]) -> list[Field_]:
        _check_unique(children)
        return children


UNKNOWN_TYPE = "unknown-type"


def _field_tag(value: Any) -> str | None:
    """The union's tag: the field type (any case), or UNKNOWN_TYPE for one we do not
    model; None (a missing type) is refused."""
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    if not isinstance(kind, str):
        return None
    kind = kind.lower()
    if kind in OTHER_TYPES:
        return "other"
    return kind if kind in FIELD_TYPES else UNKNOWN_TYPE


Field_ = Annotated[
    Annotated[TextField, Tag("text")]
    | Annotated[RichTextField, Tag("richtext")]
    | Annotated[ImageField, Tag("image")]
    | Annotated[UrlField, Tag("url")]
    | Annotated[LinkField, Tag("link")]
    | Annotated[BooleanField, Tag("boolean")]
    | Annotated[NumberField, Tag("number")]
    | Annotated[ChoiceField, Tag("choice")]
    | Annotated[ColorField, Tag("color")]
    | Annotated[FontField, Tag("font")]
    | Annotated[HubDbRowField, Tag("hubdbrow")]
    | Annotated[CrmObjectField, Tag("crmobject")]
    | Annotated[CrmObjectPropertyField, Tag("crmobjectproperty")]
    | Annotated[GroupField, Tag("group")]
    | Annotated[OtherField, Tag("other")]
    | Annotated[UnknownTypeField, Tag(UNKNOWN_TYPE)],
    Discriminator(_field_tag),
]
FIELD_TYPES = (*CORE_TYPES, *OTHER_TYPES)


def _check_unique(fields: list[Any]) -> None:
    seen: set[str] = set()
    for field in fields:
        if field.name in seen:
            raise ValueError(f"two sibling fields are named {field.name!r}")
        seen.add(field.name)


GroupField.model_rebuild()


class HubSpotConfig(BaseModel):
    """The view validated of a template's `hubspot_config` (meta and fields only).

    Sibling fields have distinct names; the rules that relate one value to another are in
    each field type's description (JSON Schema cannot state them)."""

    model_config = ConfigDict(extra="forbid")

    meta: ModuleMeta
    fields: list[Field_] = Field(default_factory=list, max_length=1000)

    @field_validator("fields")
    @classmethod
    def _unique_fields(cls, fields: list[Field_]) -> list[Field_]:
        _check_unique(fields)
        return fields
