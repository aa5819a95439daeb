"""A local Microsoft Graph for the demo and the tests: a generated tenant and a server."""

from .server import FakeGraph, Fault, Logged
from .tenant import Planted, Tenant, generate_tenant

__all__ = ["Fault", "FakeGraph", "Logged", "Planted", "Tenant", "generate_tenant"]
