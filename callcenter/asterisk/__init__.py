"""Adapters to Asterisk: the FastAGI server, the AMI client and their typed messages."""

from callcenter.asterisk.agi import (
    AgiArgumentError,
    AgiCommandError,
    AgiEnvironment,
    AgiError,
    AgiHangup,
    AgiProtocolError,
    AgiResponse,
    format_command,
)
from callcenter.asterisk.agi_server import AgiHandler, AgiServer, AgiSession
from callcenter.asterisk.ami import (
    AmiActionError,
    AmiClient,
    AmiConnectionLost,
    AmiError,
    AmiLoginError,
    AmiNotConnected,
    AmiProtocolError,
    AmiTimeout,
    AmiValueError,
)
from callcenter.asterisk.events import AmiEvent, parse_event

__all__ = [
    "AgiArgumentError",
    "AgiCommandError",
    "AgiEnvironment",
    "AgiError",
    "AgiHandler",
    "AgiHangup",
    "AgiProtocolError",
    "AgiResponse",
    "AgiServer",
    "AgiSession",
    "AmiActionError",
    "AmiClient",
    "AmiConnectionLost",
    "AmiError",
    "AmiEvent",
    "AmiLoginError",
    "AmiNotConnected",
    "AmiProtocolError",
    "AmiTimeout",
    "AmiValueError",
    "format_command",
    "parse_event",
]
