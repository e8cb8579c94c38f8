"""Tools: Python functions a policy calls in a conversation, as ``NAME(ARGUMENTS)`` (issue 39).

* :class:`Tool` - a function with a name and a timeout (it runs in a worker thread, outside any graph).
* :func:`parse_call` - the strict reading of a policy turn: exactly one call of a known tool, or an answer;
  a turn that starts like a call but is not one is a :class:`MalformedCall`.
* :func:`answer_call` - what the tools answer a turn: a tool message, and the fault when there was one
  (``malformed_call``, ``tool_error``, ``tool_timeout``).
* :class:`ToolUse` - the other side of a tool-use task for :class:`tf_rl_text.conversation.ConversationEnv`:
  the policy calls tools until it answers.

Serving uses the same functions: ``tf_rl_text.load(path).chat(messages, tools=[...])``.
"""
from __future__ import annotations

import re
import threading


class MalformedCall(ValueError):
    """A policy turn that starts like a tool call but is not one."""


class ToolError(RuntimeError):
    """A tool raised or did not return in time (``kind``: "tool_error" or "tool_timeout")."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\((.*)\)\s*$", re.S)


class Tool:
    """A Python function the policy can call: ``fn(arguments: str) -> result`` (any value; its ``str`` is the
    tool message). ``timeout_s``: how long a call may take (it runs in a worker thread; a call that does
    not return in time is a ``tool_timeout`` fault, its thread left running). ``name``: what the policy
    writes (default ``fn.__name__``)."""

    def __init__(self, fn, name: str | None = None, description: str = "", timeout_s: float = 2.0):
        if not callable(fn):
            raise ValueError(f"a tool must be callable (arguments: str) -> result, got {fn!r}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", None) or type(fn).__name__
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name):
            raise ValueError(f"a tool's name must be an identifier (the policy writes NAME(...)), got {self.name!r}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s!r}")
        self.description = description
        self.timeout_s = float(timeout_s)

    def __call__(self, arguments: str) -> str:
        box = {}

        def run():
            try:
                box["value"] = self.fn(arguments)
            except Exception as err:  # noqa: BLE001 - reported to the policy as a tool message
                box["error"] = err

        worker = threading.Thread(target=run, name=f"tool {self.name}", daemon=True)
        worker.start()
        worker.join(self.timeout_s)
        if worker.is_alive():
            raise ToolError("tool_timeout", f"tool {self.name} did not return within timeout_s={self.timeout_s:g} s")
        if "error" in box:
            err = box["error"]
            raise ToolError("tool_error", f"tool {self.name} raised {type(err).__name__}: {err}")
        return str(box["value"])


def parse_call(text: str, tools) -> tuple | None:
    """``(name, arguments)`` when ``text`` is exactly one call ``NAME(ARGUMENTS)`` of a tool in ``tools`` (names),
    None when it is not a call (an answer). A text that starts like a call of a known tool (``NAME(``) but is
    not exactly one, or a call of an unknown name, raises :class:`MalformedCall` naming what is wrong."""
    names = set(tools)
    match = CALL.match(text)
    if match:
        name, arguments = match.group(1), match.group(2)
        if name in names:
            return name, arguments
        raise MalformedCall(f"{name}(...) names no tool; the tools are {sorted(names)}")
    stripped = text.lstrip()
    for name in names:
        if stripped.startswith(name + "("):
            raise MalformedCall(f"{stripped[:40]!r} starts a call of {name} but is not NAME(ARGUMENTS) alone")
    return None


def as_tools(tools) -> dict:
    """``{name: Tool}`` of a function, a :class:`Tool` or a list of them (functions become Tools); two tools of
    one name are refused."""
    tools = [t if isinstance(t, Tool) else Tool(t) for t in (tools if isinstance(tools, (list, tuple)) else [tools])]
    named = {t.name: t for t in tools}
    if len(named) != len(tools):
        raise ValueError(f"two tools share a name: {[t.name for t in tools]}")
    return named


def answer_call(text: str, tools: dict) -> tuple:
    """What the tools answer a policy turn: ``(tool message, fault)`` for a call (``fault`` is ``(kind, detail)``
    when the call was malformed or the tool raised or hung, and the message then says ``error: ...``; else
    None), or ``(None, None)`` when the turn is not a call (an answer)."""
    try:
        call = parse_call(text, tools)
    except MalformedCall as err:
        return {"role": "tool", "content": f"error: malformed call: {err}"}, ("malformed_call", str(err))
    if call is None:
        return None, None
    name, arguments = call
    try:
        return {"role": "tool", "content": tools[name](arguments)}, None
    except ToolError as err:
        return {"role": "tool", "content": f"error: {err}"}, (err.kind, str(err))


class ToolUse:
    """The other side of a tool-use task: the policy calls tools until it answers.

    ``reset(task)``: the task's messages (``task["messages"]``, or ``task["question"]`` as a user message).
    ``step(text)``: a call (:func:`parse_call`) runs the tool and replies with its result as a tool message
    (reward ``call_reward``); a malformed call, a tool that raises or hangs replies with ``error: ...``
    (reward ``fault_reward``) and the episode goes on; any other text is the answer: the episode ends with
    ``answer_reward(text, task)``."""

    def __init__(self, tools, answer_reward, call_reward: float = 0.0, fault_reward: float = 0.0):
        self.tools = as_tools(tools)
        if not callable(answer_reward):
            raise ValueError(f"answer_reward must be callable (answer, task) -> float, got {answer_reward!r}")
        self.answer_reward = answer_reward
        self.call_reward, self.fault_reward = float(call_reward), float(fault_reward)
        self.task = None

    def reset(self, task):
        self.task = task
        if isinstance(task, dict) and "messages" in task:
            return list(task["messages"])
        return [{"role": "user", "content": task["question"] if isinstance(task, dict) else str(task)}]

    def step(self, text: str):
        reply, fault = answer_call(text, self.tools)
        if reply is None:  # not a call: the answer
            return None, float(self.answer_reward(text, self.task)), True
        if fault is not None:
            return reply, self.fault_reward, False, fault
        return reply, self.call_reward, False


__all__ = ["Tool", "ToolUse", "ToolError", "MalformedCall", "parse_call", "answer_call", "as_tools", "CALL"]
