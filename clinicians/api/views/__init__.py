"""Clinician portal (`/api/v1/portal/…`) and clinic-admin care teams and access log: one module
per entity the URLs name (`clinicians.api.urls` imports the modules)."""
