"""Config: load `shared-mysql.yaml` -> validate -> frozen models.

Where the file comes from, first match wins:
  1. the explicit path (`-c/--config`, or `config=` in the library),
  2. the `SHARED_MYSQL_CONFIG` environment variable,
  3. `./shared-mysql.yaml`.
Settings not in the file take the seed's defaults (see `model.py`).
"""

from .load import LoadedConfig, find_config_path, load_config, parse_config
from .model import Config, Instance, Tenant

__all__ = ["Config", "Instance", "Tenant", "LoadedConfig", "find_config_path", "load_config", "parse_config"]
