"""A local Microsoft Graph for the demo and the tests: a generated tenant and a server."""

from .faults import Fault
from .server import FakeGraph, Logged
from .tenant import Planted, Tenant, generate_tenant

__all__ = ["Fault", "FakeGraph", "Logged", "Planted", "Tenant", "generate_tenant"]
