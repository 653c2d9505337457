"""Tenants: model (desired/actual) | inspect (read the server) | plan (pure diff) | apply | render.

Names are imported on first use (PEP 562), so a command that only needs the model (`tenants`) does not load the
SQL, executor and apply machinery at start-up."""

_WHERE = {
    "ApplyResult": "apply", "apply_plan": "apply", "check_destructive": "apply", "render_statements": "apply",
    "inspect_secrets": "inspect", "inspect_server": "inspect",
    "Actual": "model", "Desired": "model", "build_desired": "model", "secret_name": "model",
    "Action": "plan", "Plan": "plan", "build_plan": "plan",
    "render_text": "render",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
