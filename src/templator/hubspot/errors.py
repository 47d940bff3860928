"""HubSpot module errors."""

from __future__ import annotations

from templator.exceptions import ValidationFailed


class InvalidHubSpotConfig(ValidationFailed):
    """The configuration does not match HubSpot's module format; `.field` is the path."""

    code = "invalid_hubspot_config"


class InvalidModuleArchive(ValidationFailed):
    """A module folder or zip that cannot be read safely."""

    code = "invalid_module_archive"
