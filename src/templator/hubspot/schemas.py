"""HubSpot module configuration (meta.json and fields.json) as typed models.

Modelled on HubSpot's module configuration and field reference: unknown keys are
refused (a typo like `lable` is an error, not silently dropped), common field types are
typed with their own properties, and the rest share a looser model. The template's
`hubspot_config` column holds `{"meta": {...}, "fields": [...]}`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

CONTENT_TYPES = Literal[
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
]
HOST_TEMPLATE_TYPES = Literal["PAGE", "BLOG_POST", "BLOG_LISTING", "EMAIL", "QUOTE_TEMPLATE"]
NAME_PATTERN = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,99}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RenderOptions(_Strict):
    """css_render_options / js_render_options."""

    async_: bool | None = Field(default=None, alias="async")
    defer: bool | None = None
    position: Literal["head", "footer"] | None = None


class ModuleMeta(_Strict):
    """meta.json."""

    label: str = Field(min_length=1, max_length=200)
    icon: str | None = Field(default=None, max_length=2000)
    module_id: int | None = None
    is_available_for_new_content: bool = True
    global_: bool = Field(default=False, alias="global")
    content_types: list[CONTENT_TYPES] | None = None
    host_template_types: list[HOST_TEMPLATE_TYPES] | None = None
    css_assets: list[str] = Field(default_factory=list, max_length=50)
    css_render_options: RenderOptions | None = None
    js_assets: list[str] = Field(default_factory=list, max_length=50)
    js_render_options: RenderOptions | None = None
    other_assets: list[str] = Field(default_factory=list, max_length=50)
    smart_type: Literal["NOT_SMART", "SMART"] | None = None
    tags: list[str] = Field(default_factory=list, max_length=50)
    help_text: str | None = Field(default=None, max_length=2000)
    master_language: str | None = None
    placeholder: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _where_used(self) -> ModuleMeta:
        if not self.content_types and not self.host_template_types:
            raise ValueError("set content_types (or the legacy host_template_types)")
        return self


class Occurrence(_Strict):
    """Repeater settings of a field."""

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=1)
    sorting_label_field: str | None = None
    default: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> Occurrence:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"occurrence min ({self.min}) is greater than max ({self.max})")
        return self


class Visibility(_Strict):
    """Conditional visibility of a field."""

    controlling_field: str | None = None
    controlling_field_path: str | None = None
    controlling_value_regex: str | None = None
    operator: str | None = None
    property: str | None = None
    access: dict[str, Any] | None = None
    hidden_subfields: dict[str, bool] | None = None


class _FieldBase(_Strict):
    name: str
    label: str = Field(min_length=1, max_length=200)
    required: bool = False
    locked: bool = False
    id: str | None = None
    help_text: str | None = Field(default=None, max_length=2000)
    inline_help_text: str | None = Field(default=None, max_length=2000)
    display_width: Literal["full_width", "half_width"] | None = None
    visibility: Visibility | None = None
    visibility_rules: Literal["SIMPLE", "ADVANCED"] | None = None
    advanced_visibility: dict[str, Any] | None = None
    occurrence: Occurrence | None = None
    alias_mapping: dict[str, Any] | None = None

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(f"field name {value!r} must be an identifier (letters, digits, _)")
        return value


class TextField(_FieldBase):
    """Single-line text."""

    type: Literal["text"]
    default: str | None = None
    validation_regex: str | None = None
    allow_new_line: bool | None = None
    show_emoji_picker: bool | None = None
    placeholder: str | None = None


class RichTextField(_FieldBase):
    """Rich text (HTML)."""

    type: Literal["richtext"]
    default: str | None = None
    enabled_features: list[str] | None = None


class ImageDefault(_Strict):
    src: str = ""
    alt: str | None = None
    width: int | None = None
    height: int | None = None
    size_type: Literal["auto", "auto_custom_max", "exact"] | None = None
    loading: Literal["lazy", "eager", "disabled"] | None = None
    max_width: int | None = None
    max_height: int | None = None


class ImageField(_FieldBase):
    """An image."""

    type: Literal["image"]
    default: ImageDefault | None = None
    responsive: bool | None = None
    resizable: bool | None = None
    show_loading: bool | None = None


class UrlDefault(_Strict):
    content_id: int | None = None
    href: str = ""
    type: Literal[
        "EXTERNAL",
        "CONTENT",
        "FILE",
        "EMAIL_ADDRESS",
        "BLOG",
        "CALL_TO_ACTION",
        "PAYMENT",
        "PHONE_NUMBER",
        "WHATSAPP_NUMBER",
    ] = "EXTERNAL"


class UrlField(_FieldBase):
    """A URL."""

    type: Literal["url"]
    default: UrlDefault | None = None
    supported_types: list[str] | None = None


class LinkDefault(_Strict):
    url: UrlDefault = Field(default_factory=UrlDefault)
    open_in_new_tab: bool = False
    no_follow: bool = False
    rel: str | None = None


class LinkField(_FieldBase):
    """A link (URL plus target options)."""

    type: Literal["link"]
    default: LinkDefault | None = None
    supported_types: list[str] | None = None
    show_advanced_rel_options: bool | None = None


class BooleanField(_FieldBase):
    """A checkbox or toggle."""

    type: Literal["boolean"]
    default: bool | None = None
    display: Literal["checkbox", "toggle"] | None = None


class NumberField(_FieldBase):
    """A number."""

    type: Literal["number"]
    default: float | None = None
    min: float | None = None
    max: float | None = None
    step: float | None = Field(default=None, gt=0)
    display: Literal["slider", "text"] | None = None
    prefix: str | None = None
    suffix: str | None = None
    placeholder: str | None = None

    @model_validator(mode="after")
    def _range(self) -> NumberField:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is greater than max ({self.max:g})")
        if self.default is not None and (
            (self.min is not None and self.default < self.min)
            or (self.max is not None and self.default > self.max)
        ):
            raise ValueError(f"default {self.default:g} is outside min/max")
        return self


class ChoiceField(_FieldBase):
    """A choice among [value, label] pairs."""

    type: Literal["choice"]
    choices: list[tuple[str, str]] = Field(min_length=1)
    default: str | list[str] | None = None
    multiple: bool | None = None
    display: Literal["select", "radio", "checkbox", "buttons"] | None = None
    reordering_enabled: bool | None = None
    placeholder: str | None = None
    preset: str | None = None

    @model_validator(mode="after")
    def _default_is_a_choice(self) -> ChoiceField:
        values = {value for value, _ in self.choices}
        chosen = [self.default] if isinstance(self.default, str) else (self.default or [])
        unknown = [v for v in chosen if v not in values]
        if unknown:
            raise ValueError(f"default {unknown[0]!r} is not one of the choices")
        return self


class ColorDefault(_Strict):
    color: str | None = None
    opacity: int | None = Field(default=None, ge=0, le=100)

    @field_validator("color")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?", value):
            raise ValueError(f"color {value!r} must be a hex color like #ff0000")
        return value


class ColorField(_FieldBase):
    """A color with opacity."""

    type: Literal["color"]
    default: ColorDefault | None = None
    show_opacity: bool | None = None


class FontField(_FieldBase):
    """A font (family, size, style)."""

    type: Literal["font"]
    default: dict[str, Any] | None = None
    load_external_fonts: bool | None = None
    visibility_options: dict[str, Any] | None = None


class CtaField(_FieldBase):
    """A call-to-action."""

    type: Literal["cta"]
    default: str | None = None


class OtherField(_FieldBase):
    """The remaining documented field types, with a looser shape."""

    model_config = ConfigDict(extra="allow")

    type: Literal[
        "date",
        "datetime",
        "email",
        "file",
        "icon",
        "page",
        "blog",
        "form",
        "menu",
        "simplemenu",
        "logo",
        "video",
        "videoplayer",
        "embed",
        "hubdbrow",
        "hubdbtable",
        "tag",
        "spacing",
        "backgroundimage",
        "alignment",
        "border",
        "gradient",
        "textalignment",
        "crmobject",
        "crmobjectproperty",
        "followupemail",
        "meeting",
        "payment",
        "product",
        "hubspotvideo",
    ]
    default: Any = None


class GroupField(_FieldBase):
    """A group of fields (nested groups allowed)."""

    type: Literal["group"]
    children: list[Field_] = Field(min_length=1)
    default: Any = None
    expanded: bool | None = None
    tab: Literal["CONTENT", "STYLE"] | None = None
    group_occurrence_meta: dict[str, Any] | None = None

    @field_validator("children")
    @classmethod
    def _unique_children(cls, children: list[Field_]) -> list[Field_]:
        _check_unique(children)
        return children


Field_ = Annotated[
    TextField
    | RichTextField
    | ImageField
    | UrlField
    | LinkField
    | BooleanField
    | NumberField
    | ChoiceField
    | ColorField
    | FontField
    | CtaField
    | GroupField
    | OtherField,
    Field(discriminator="type"),
]


def _check_unique(fields: list[Any]) -> None:
    seen: set[str] = set()
    for field in fields:
        if field.name in seen:
            raise ValueError(f"two sibling fields are named {field.name!r}")
        seen.add(field.name)


GroupField.model_rebuild()


class HubSpotConfig(_Strict):
    """A module's configuration: meta.json and fields.json."""

    meta: ModuleMeta
    fields: list[Field_] = Field(default_factory=list, max_length=500)

    @field_validator("fields")
    @classmethod
    def _unique_fields(cls, fields: list[Field_]) -> list[Field_]:
        _check_unique(fields)
        return fields

    def meta_json(self) -> dict[str, Any]:
        """meta.json content."""
        return self.meta.model_dump(mode="json", by_alias=True, exclude_none=True)

    def fields_json(self) -> list[dict[str, Any]]:
        """fields.json content."""
        return [f.model_dump(mode="json", by_alias=True, exclude_none=True) for f in self.fields]
