"""Every real-call test stops the SIPp phones it started, whatever happens to it."""

from tests.support.calls import sipp_cleanup  # noqa: F401 - an autouse fixture, for this folder
