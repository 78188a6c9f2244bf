"""s4t agent's plugin runner: runs one Lightning-rod plugin in this process.

The agent starts ``python3 s4t_plugin_runner.py`` with the job as one JSON line on stdin:
``{"mode": "call"|"async"|"serve", "uuid": ..., "name": ..., "file": ..., "params": ...}``. It
loads the plugin file, builds ``Worker(uuid, name, q_result, params)`` and starts it.

``serve`` keeps the process for the PluginCalls of a callable plugin: the module is loaded once
(on the first request) and every further line on stdin, ``{"params": ...}``, builds a fresh
``Worker`` in a thread; the answer is the same ``result``/``error`` line as for ``call``, followed
by ``{"event": "idle"}`` once that worker thread has ended (or the answer carries ``"idle": true``
when the thread had already ended: the next call may come at once). The process ends when stdin closes
(once the current worker ended), on SIGTERM (after the current worker's ``stop()``), or after a
module that does not load.

What the agent reads on stdout is one JSON line:

- ``{"event": "started"}``: an asynchronous plugin is running (PluginStart, PluginReboot);
- ``{"event": "result", "value": ...}``: the first item a callable plugin put (PluginCall);
- ``{"event": "error", "stage": "load"|"run", "message": ...}``: the plugin could not be loaded
  or built, or it failed before it gave a result.

Everything else (the plugin's prints, its log, tracebacks) goes to stderr, which the agent keeps
in the plugin's log file. The process ends when the worker thread ends. SIGTERM calls the
worker's ``stop()`` (``_is_running = False``); the agent kills the process if it lingers. If the
agent itself goes away, the plugin is stopped the same way.
"""

import importlib.util
import json
import logging
import os
import queue
import signal
import sys
import threading
import traceback

# How long an orphaned plugin (its agent died) gets to end after stop().
ORPHAN_GRACE = 2.0
POLL = 0.2
# How long a served call's answer waits for its worker thread to end (to report it idle).
IDLE_WAIT = 0.02


def text_of(err):
    return str(err) or type(err).__name__


def main():
    # Plugin files are rewritten in place on PluginInject: never run a stale cached copy.
    sys.dont_write_bytecode = True
    # The protocol gets a private copy of stdout; fd 1 becomes the log, so a plugin's print()
    # cannot garble what the agent reads.
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    try:
        sys.stdout.reconfigure(line_buffering=True)
        sys.stderr.reconfigure(line_buffering=True)
    except AttributeError:
        pass

    def emit(event):
        try:
            line = json.dumps(event)
        except (TypeError, ValueError):
            # Not JSON: the reply carries its text.
            event = dict(event, value=str(event.get("value")))
            line = json.dumps(event)
        proto.write(line + "\n")
        proto.flush()

    job = json.loads(sys.stdin.buffer.readline().decode("utf-8"))
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.append(os.path.join(here, "fallback"))
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    mode, uuid, name = job["mode"], job["uuid"], job["name"]
    params = job.get("params")
    log = logging.getLogger("s4t.plugin")
    if mode == "serve":
        return serve(job, emit, log)
    log.info("plugin %s (%s): %s", name, uuid, "PluginCall" if mode == "call" else "start")

    q_result = queue.Queue() if mode == "call" else None
    try:
        spec = importlib.util.spec_from_file_location("plugin", job["file"])
        module = importlib.util.module_from_spec(spec)
        sys.modules["plugin"] = module
        spec.loader.exec_module(module)
        if q_result is None:
            worker = module.Worker(uuid, name, params=params)
        else:
            worker = module.Worker(uuid, name, q_result=q_result, params=params)
    except BaseException as err:
        traceback.print_exc()
        emit({"event": "error", "stage": "load", "message": text_of(err)})
        return 1

    failures = []
    plugin_run = worker.run

    def guarded_run():
        try:
            plugin_run()
        except BaseException as err:
            failures.append(err)
            raise

    worker.run = guarded_run
    stopping = threading.Event()

    def stop(*_):
        if stopping.is_set():
            return
        stopping.set()
        log.info("plugin %s (%s): stopping", name, uuid)
        try:
            worker.stop()
        except Exception:
            traceback.print_exc()

    signal.signal(signal.SIGTERM, stop)
    parent = os.getppid()
    try:
        worker.start()
    except BaseException as err:
        traceback.print_exc()
        emit({"event": "error", "stage": "load", "message": text_of(err)})
        return 1

    answered = q_result is None
    if answered:
        emit({"event": "started"})
    orphaned_at = None
    while True:
        if not answered:
            try:
                emit({"event": "result", "value": q_result.get(timeout=POLL)})
                answered = True
                continue
            except queue.Empty:
                pass
        else:
            worker.join(POLL)
        if not worker.is_alive():
            if not answered:
                try:
                    emit({"event": "result", "value": q_result.get_nowait()})
                except queue.Empty:
                    if failures:
                        err = failures[0]
                        message = "%s: %s" % (type(err).__name__, err)
                    else:
                        message = "the plugin ended without putting a result"
                    emit({"event": "error", "stage": "run", "message": message})
            break
        if orphaned_at is None and os.getppid() != parent:
            log.warning("plugin %s (%s): the agent is gone", name, uuid)
            stop()
            orphaned_at = 0.0
        elif orphaned_at is not None:
            orphaned_at += POLL
            if orphaned_at >= ORPHAN_GRACE:
                break
    log.info("plugin %s (%s): ended", name, uuid)
    return 1 if failures else 0


def serve(job, emit, log):
    uuid, name = job["uuid"], job["name"]
    requests = queue.Queue()

    def read_requests():
        for line in sys.stdin.buffer:
            requests.put(line)
        requests.put(None)

    threading.Thread(target=read_requests, daemon=True).start()
    stopping = threading.Event()
    current = []  # the worker of the call being served, if any

    def stop(*_):
        if stopping.is_set():
            return
        stopping.set()
        log.info("plugin %s (%s): stopping", name, uuid)
        for worker in current:
            try:
                worker.stop()
            except Exception:
                traceback.print_exc()

    signal.signal(signal.SIGTERM, stop)
    parent = os.getppid()
    module = None
    code = 0
    while not stopping.is_set():
        try:
            line = requests.get(timeout=POLL)
        except queue.Empty:
            if os.getppid() != parent:
                log.warning("plugin %s (%s): the agent is gone", name, uuid)
                break
            continue
        if line is None:
            break
        params = json.loads(line.decode("utf-8")).get("params")
        log.info("plugin %s (%s): PluginCall", name, uuid)
        q_result = queue.Queue()
        try:
            if module is None:
                spec = importlib.util.spec_from_file_location("plugin", job["file"])
                loaded = importlib.util.module_from_spec(spec)
                sys.modules["plugin"] = loaded
                try:
                    spec.loader.exec_module(loaded)
                except BaseException:
                    code = 1
                    raise
                module = loaded
            worker = module.Worker(uuid, name, q_result=q_result, params=params)
        except BaseException as err:
            traceback.print_exc()
            emit({"event": "error", "stage": "load", "message": text_of(err), "idle": True})
            if code:
                break
            continue
        failures = []
        plugin_run = worker.run

        def guarded_run(plugin_run=plugin_run, failures=failures):
            try:
                plugin_run()
            except BaseException as err:
                failures.append(err)
                raise

        worker.run = guarded_run
        current[:] = [worker]
        try:
            worker.start()
        except BaseException as err:
            traceback.print_exc()
            current.clear()
            emit({"event": "error", "stage": "load", "message": text_of(err), "idle": True})
            continue
        answered = False
        idle = False
        orphaned_at = None
        while True:
            if not answered:
                try:
                    value = q_result.get(timeout=POLL)
                    # Most plugins return right after their put(): say so with the answer.
                    worker.join(IDLE_WAIT)
                    idle = not worker.is_alive()
                    emit({"event": "result", "value": value, "idle": idle})
                    answered = True
                    continue
                except queue.Empty:
                    pass
            else:
                worker.join(POLL)
            if not worker.is_alive():
                if not answered:
                    idle = True
                    try:
                        emit({"event": "result", "value": q_result.get_nowait(), "idle": True})
                    except queue.Empty:
                        if failures:
                            err = failures[0]
                            message = "%s: %s" % (type(err).__name__, err)
                        else:
                            message = "the plugin ended without putting a result"
                        emit({"event": "error", "stage": "run", "message": message, "idle": True})
                break
            if orphaned_at is None and os.getppid() != parent:
                log.warning("plugin %s (%s): the agent is gone", name, uuid)
                stop()
                orphaned_at = 0.0
            elif orphaned_at is not None:
                orphaned_at += POLL
                if orphaned_at >= ORPHAN_GRACE:
                    return 1
        current.clear()
        if not idle:
            emit({"event": "idle"})
    log.info("plugin %s (%s): ended", name, uuid)
    return code


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # The worker thread has ended (or the agent is gone): threads the plugin left behind do not
    # keep the process alive.
    os._exit(code)
