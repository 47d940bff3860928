"""The HTTP layer: problem details, dependencies, routers."""
