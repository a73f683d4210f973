"""HTTP mechanisms shared by every domain: problem details, middleware, body reading."""
