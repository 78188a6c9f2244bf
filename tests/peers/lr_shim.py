"""Runs the stock Lightning-rod 0.5.0, unchanged, inside a test sandbox.

Lightning-rod hard-codes three things a test cannot allow: its settings file
(/etc/iotronic/settings.json), a web UI on 0.0.0.0:1474, and a `pkill` of every
wstun process on first boot. Before handing over to Lightning-rod's own entry
point, this shim reads the settings path from $LR_SETTINGS, binds the UI to
127.0.0.1:$LR_REST_PORT, and turns pkill/killall commands into no-ops.
Lightning-rod re-executes itself with the same argv, which runs the shim again.

Usage: LR_SETTINGS=... LR_REST_PORT=... python lr_shim.py --config-file FILE
"""
import os
import sys


def confine():
    settings_path = os.environ["LR_SETTINGS"]
    ui_port = int(os.environ.get("LR_REST_PORT", "1474"))

    import flask

    flask_run = flask.Flask.run

    def run_on_loopback(app, *_where, **options):
        options.pop("host", None)
        options.pop("port", None)
        return flask_run(app, host="127.0.0.1", port=ui_port, **options)

    flask.Flask.run = run_on_loopback

    shell = os.system

    def shell_without_kills(command):
        if "pkill" in command or "killall" in command:
            sys.stderr.write("lr_shim: skipped %r\n" % (command,))
            return 0
        return shell(command)

    os.system = shell_without_kills

    from iotronic_lightningrod import Board

    Board.SETTINGS = settings_path


if __name__ == "__main__":
    confine()
    from iotronic_lightningrod import lightningrod

    lightningrod.main()
