"""A local Microsoft Graph for the demo and the tests: a generated tenant and a server."""

from sweeper.fakegraph.faults import Fault
from sweeper.fakegraph.generate import generate_tenant
from sweeper.fakegraph.router import Logged
from sweeper.fakegraph.server import FakeGraph
from sweeper.fakegraph.tenant import Planted, Tenant

__all__ = ["Fault", "FakeGraph", "Logged", "Planted", "Tenant", "generate_tenant"]
