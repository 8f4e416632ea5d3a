"""`functions`: the platform's command line (deploy a folder, follow logs, call functions,
promote and roll back), speaking only the platform's public JSON API."""

__version__ = "0.1.0"
