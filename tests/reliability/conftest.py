"""The reliability suite: bad input, HTTP framing, bounded resources and process faults, against
real server processes on 127.0.0.1 (``tests.helpers.server_process``). Every loop is bounded in
count and time.
"""
