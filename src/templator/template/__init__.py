"""Templates: generated HubSpot modules, their versions, workflow and search."""
