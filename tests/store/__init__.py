"""The two stores against one contract (:mod:`.contract`): SQLite, and a throwaway PostgreSQL."""
