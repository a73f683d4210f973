"""GraphQL over the same services as the REST API (docs/api-styles.md)."""
