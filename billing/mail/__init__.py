"""Transactional email: composition (pure) and the outbox sender."""
