"""Ids and claim tokens: unguessable random bytes from the operating system, taken a few
kilobytes at a time; a forked child never repeats its parent's."""

from __future__ import annotations

import os
import re

from broker.core import ids


def test_random_hex_is_as_long_as_asked_and_never_repeats() -> None:
    made = [ids.random_hex(8) for _ in range(5_000)]
    assert all(re.fullmatch("[0-9a-f]{16}", each) for each in made)
    assert len(set(made)) == len(made)
    assert len(ids.random_hex(5_000)) == 10_000


def test_ids_name_their_kind_and_sort_by_time() -> None:
    made = [ids.new_id("in") for _ in range(2_000)]
    assert all(re.fullmatch("in_[0-9a-f]{28}", each) for each in made)
    # Many share a millisecond: they still sort in the order they were made.
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_a_forked_child_does_not_repeat_its_parent_s_bytes() -> None:
    ids.random_hex(8)  # the parent holds a batch of bytes not used yet
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(write, ids.random_hex(8).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    from_child = os.read(read, 64).decode()
    os.close(read)
    assert len(from_child) == 16 and from_child != ids.random_hex(8)
