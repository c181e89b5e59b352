"""HTTP routes of the billing sidecar (Starlette), mounted by the product's app factory."""
