"""HubSpot CMS modules: typed configuration, deterministic export, import."""
