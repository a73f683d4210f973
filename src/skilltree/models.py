"""Every table of skilltree, registered on the one shared MetaData.

Foreign keys cross domains (a roadmap's owner is a user, its organisation an organisation), and
SQLAlchemy resolves them by table name within one MetaData. Any process that uses the ORM must
therefore have imported every domain's models; importing this module does exactly that. The app
factory, the CLI and the migrations import it.
"""

from skilltree.accounts import models as accounts
from skilltree.audit import models as audit
from skilltree.cohorts import models as cohorts
from skilltree.files import models as files
from skilltree.flags import models as flags
from skilltree.notifications import models as notifications
from skilltree.orgs import models as orgs
from skilltree.platform import idempotency_records as idempotency
from skilltree.platform.models import Base
from skilltree.platform.queue import models as queue
from skilltree.profiles import models as profiles
from skilltree.progress import models as progress
from skilltree.reviews import models as reviews
from skilltree.roadmaps import models as roadmaps
from skilltree.rooms import models as rooms
from skilltree.search import models as search
from skilltree.webhooks import models as webhooks

__all__ = [
    "Base",
    "accounts",
    "audit",
    "cohorts",
    "files",
    "flags",
    "idempotency",
    "notifications",
    "orgs",
    "profiles",
    "progress",
    "queue",
    "reviews",
    "roadmaps",
    "rooms",
    "search",
    "webhooks",
]


def include_in_schema_comparison(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Whether Alembic compares a schema object with the models: not the full-text machinery
    a backend keeps beside the search index (search/models.py)."""
    return not (reflected and compare_to is None and search.is_backend_object(name))
