"""Reading a command line as az (argparse) did where click differs: ``-d=OUTPUT``.

argparse reads ``-d=OUTPUT`` as the value ``OUTPUT``; click reads it as ``=OUTPUT`` (the rest
of the word after ``-d``). az's own tests and users' scripts write the first, so the word is
split into ``-d OUTPUT`` before click sees it, for short options that take a value only:
``-abc`` flag clusters and values that merely contain ``=`` stay as they are.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import click

__all__ = ["AzGroup", "split_short_equals"]


class AzGroup(click.Group):
    """The root group: its whole command line is read as az read it."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: object,
    ) -> click.Context:
        return super().make_context(
            info_name, split_short_equals(self, args), parent=parent, **extra
        )


def split_short_equals(root: click.Command, args: Sequence[str]) -> list[str]:
    """``args`` with each ``-x=VALUE`` of an option taking a value made ``-x VALUE``.

    The command is followed down the groups (``job file list``) so that each word is judged
    by the options of the command it belongs to.
    """
    out: list[str] = []
    command = root
    ctx = click.Context(root)  # get_command's argument; the lazy root imports a group here
    takes_value = _value_options(command)
    words = iter(args)
    for word in words:
        if word == "--":
            out.append(word)
            out.extend(words)
            break
        if word in takes_value:  # its value is the next word, whatever it looks like
            out.append(word)
            out.extend(_next(words))
            continue
        if len(word) > 2 and word[0] == "-" and word[1] != "-" and word[2] == "=":
            if word[:2] in takes_value:
                out.extend([word[:2], word[3:]])
                continue
        if isinstance(command, click.Group) and not word.startswith("-"):
            sub = command.get_command(ctx, word)
            if sub is not None:
                command = sub
                takes_value = _value_options(command)
        out.append(word)
    return out


def _value_options(command: click.Command) -> set[str]:
    names: set[str] = set()
    for param in command.params:
        if isinstance(param, click.Option) and not param.is_flag and not param.count:
            names.update(param.opts)
    return names


def _next(words: Iterator[str]) -> list[str]:
    word = next(words, None)
    return [] if word is None else [word]
