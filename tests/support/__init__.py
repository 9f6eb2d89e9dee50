"""What tests share: the server launcher, the kubectl runner, a throwaway PostgreSQL."""
