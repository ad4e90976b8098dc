"""Shared test set-up."""

# Import the repository's custom_components before the HA test plugin mounts its own
# testing_config package under that name (it would hide our integration silently).
import custom_components  # noqa: F401
