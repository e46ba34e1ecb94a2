#!/usr/bin/env python3
"""Run a command on a new pseudo-terminal, as a user at a terminal would, and answer its prompts.

usage: prompt-pty.py RESULT.json ANSWER... -- COMMAND [ARG...]

Each ANSWER is written after the next "Enter the " prompt appears: "text:PASSWORD" types
PASSWORD and Enter, "ctrl-c" types Ctrl-C (the terminal sends SIGINT). RESULT.json receives:
output (everything the terminal showed), exit (the exit status, or null), signal (the signal
that ended the command, or null), echo_after (whether the terminal echoes again once the command
ended), prompts (how many prompts were seen).
"""
import json
import os
import pty
import select
import sys
import termios
import time


def main():
    result_path = sys.argv[1]
    split = sys.argv.index("--")
    answers = sys.argv[2:split]
    command = sys.argv[split + 1:]

    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(command[0], command)

    output = b""
    prompts = 0
    deadline = time.monotonic() + 60
    status = None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                break
            output += chunk
            while output.count(b"Enter the ") > prompts:
                prompts += 1
                if answers:
                    answer = answers.pop(0)
                    time.sleep(0.1)  # the prompt turns echo off just after it is written
                    if answer == "ctrl-c":
                        os.write(fd, b"\x03")
                    else:
                        os.write(fd, answer.split(":", 1)[1].encode() + b"\r")
        done, st = os.waitpid(pid, os.WNOHANG)
        if done:
            status = st
            # Drain what is left.
            while select.select([fd], [], [], 0.1)[0]:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                output += chunk
            break
    if status is None:
        try:
            _, status = os.waitpid(pid, 0 if time.monotonic() < deadline else os.WNOHANG)
        except ChildProcessError:
            status = None
    # The pty pair shares one set of terminal settings: read them from the master side.
    try:
        echo_after = bool(termios.tcgetattr(fd)[3] & termios.ECHO)
    except termios.error:
        echo_after = None
    result = {
        "output": output.decode("utf-8", "replace"),
        "exit": os.WEXITSTATUS(status) if status is not None and os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if status is not None and os.WIFSIGNALED(status) else None,
        "echo_after": echo_after,
        "prompts": prompts,
    }
    with open(result_path, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
