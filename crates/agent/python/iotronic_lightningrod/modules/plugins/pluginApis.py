"""Helpers plugins may call, as s4t agent provides them.

The board's identity comes from the agent through the environment of the plugin's process
(``S4T_BOARD_UUID``, ``S4T_BOARD_LOCATION`` as JSON), taken from the board's settings when the
plugin starts.
"""

import json
import os
import urllib.error
import urllib.request


def getBoardID():
    """The board's uuid (None before the board is registered)."""
    return os.environ.get("S4T_BOARD_UUID") or None


def getLocation():
    """The board's location from its settings: a dict (latitude, longitude, altitude, ...)."""
    raw = os.environ.get("S4T_BOARD_LOCATION")
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return {}


def getBoardGpio():
    raise NotImplementedError(
        "getBoardGpio: s4t agent has no board-specific GPIO layer; "
        "use a GPIO library (for example gpiod or RPi.GPIO) in the plugin directly"
    )


class Response(dict):
    """Response headers (lower-case names) plus ``status``, as a dict and as attributes."""

    def __init__(self, status, reason, headers):
        dict.__init__(self, ((k.lower(), v) for k, v in headers))
        self["status"] = str(status)
        self.status = status
        self.reason = reason


def sendRequest(url, action, headers=None, body=None, verbose=False, timeout=None):
    """An HTTP request from the board: returns ``(response, content)``.

    ``response`` holds the status and the headers, ``content`` the body as bytes. HTTP error
    statuses are returned, not raised; a failed connection raises ``urllib.error.URLError``.
    """
    if isinstance(body, str):
        body = body.encode("utf-8")
    request = urllib.request.Request(
        url, data=body, headers=dict(headers or {}), method=action
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            content = resp.read()
            response = Response(resp.status, resp.reason, resp.getheaders())
    except urllib.error.HTTPError as err:
        content = err.read()
        response = Response(err.code, err.reason, err.headers.items())
    if verbose:
        import logging

        logging.getLogger(__name__).info(
            "%s %s: %s %s", action, url, response.status, response.reason
        )
    return response, content
