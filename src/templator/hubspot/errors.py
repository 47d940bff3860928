"""HubSpot module errors, each with its own stable `code`."""

from __future__ import annotations

from templator.exceptions import Conflict, PayloadTooLarge, ValidationFailed


class InvalidHubSpotConfig(ValidationFailed):
    """The configuration does not match HubSpot's module format; `.field` is the path of
    the first problem, `.problems` every (path, message) found."""

    code = "invalid_hubspot_config"
    problems: tuple[tuple[str, str], ...] = ()


class InvalidModuleArchive(ValidationFailed):
    """A module folder or zip that cannot be read safely (links, `..`, bad encoding…)."""

    code = "invalid_module_archive"


class InvalidModuleJson(InvalidModuleArchive):
    """meta.json or fields.json is not valid JSON (or has duplicate keys); names file and line."""

    code = "invalid_module_json"


class ModuleTooLarge(PayloadTooLarge):
    """A module (or a zip of modules) is over a size or file-count limit."""

    code = "module_too_large"


class ModuleCheckFailed(Conflict):
    """`module check` found errors; the template may not leave DRAFT until they are fixed."""

    code = "module_check_failed"
