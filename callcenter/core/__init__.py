"""The pure, sans-I/O core: state machines that take events and return actions."""
