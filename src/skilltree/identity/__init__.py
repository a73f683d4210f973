"""Who is asking, in types every domain may import: no ORM, no web framework.

`Principal` is the signed-in caller (which credential, which scopes), `Viewer` the same caller
with their organisation roles as visibility rules need them, `Scope` what a credential may do,
`Slug` the shape of every public name in a URL.
"""

from skilltree.identity.principal import Credential, Principal
from skilltree.identity.scopes import Scope
from skilltree.identity.slug import MAX_SLUG_LENGTH, SLUG_PATTERN, Slug
from skilltree.identity.viewer import ANONYMOUS, EDITOR_ROLES, OPERATOR, Viewer, Visibility

__all__ = [
    "ANONYMOUS",
    "EDITOR_ROLES",
    "MAX_SLUG_LENGTH",
    "OPERATOR",
    "SLUG_PATTERN",
    "Credential",
    "Principal",
    "Scope",
    "Slug",
    "Viewer",
    "Visibility",
]
