"""Data masking for environment refresh: rules from the config (`tenants.<t>.masking`), batched and resumable
masking on the server, and its verification (`mask --check`)."""
