"""shared-mysql: one MySQL/MariaDB instance shared by many services, run as code."""

__version__ = "0.1.0"
