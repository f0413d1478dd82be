-- make bench: wrk's request for http.echo (bench_http.c runs
-- `wrk -s wrk_echo.lua ... http://127.0.0.1:PORT/echo`): a POST of the small
-- JSON body the bench's own client sends too, given by bench_http.c in
-- PACT_BENCH_ECHO_BODY so that both drivers send the same bytes. Only
-- fields are set, no request() or response() function: wrk then sends one
-- prebuilt request and parses the responses in C, as for the plain GET.
wrk.method = "POST"
wrk.body = os.getenv("PACT_BENCH_ECHO_BODY")
if not wrk.body or #wrk.body == 0 then
   -- an error here only prints: wrk would go on without a body
   io.stderr:write("wrk_echo.lua: PACT_BENCH_ECHO_BODY is not set\n")
   os.exit(1)
end
wrk.headers["Content-Type"] = "application/json"
