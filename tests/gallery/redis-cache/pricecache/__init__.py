"""Price quotes: computed once, cached in Redis for the storefront, recorded in Postgres."""
