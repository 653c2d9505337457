"""Tenants: model (desired/actual) | inspect (read the server) | plan (pure diff) | apply | render."""

from .apply import ApplyResult, apply_plan, check_destructive, render_statements
from .inspect import inspect_secrets, inspect_server
from .model import Actual, Desired, build_desired, secret_name
from .plan import Action, Plan, build_plan
from .render import render_text

__all__ = ["Action", "Actual", "ApplyResult", "Desired", "Plan", "apply_plan", "build_desired", "build_plan",
           "check_destructive", "inspect_secrets", "inspect_server", "render_statements", "render_text",
           "secret_name"]
