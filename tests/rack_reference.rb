# Reference for tests/test_query_rack.py: Rack::Utils.parse_nested_query on each query.
#
# stdin: one query per line, hex-encoded (queries hold arbitrary bytes).
# stdout: one JSON line per query, {"ok": params} or {"error": class, "message": text}.
# The query is handed to Rack as binary (ASCII-8BIT), as Rack's SPEC wants CGI values with
# non-ASCII bytes. Rack force-encodes decoded strings to UTF-8 without validating them;
# Rails then rejects params holding an invalid string with 400, so that is an error here too.
require 'json'
require 'rack'

# Raised when the parsed params hold a string that is not valid UTF-8.
class InvalidUtf8 < StandardError; end

def check_utf8(obj)
  case obj
  when Hash
    obj.each do |k, v|
      check_utf8(k)
      check_utf8(v)
    end
  when Array
    obj.each { |v| check_utf8(v) }
  when String
    raise InvalidUtf8 unless obj.dup.force_encoding(Encoding::UTF_8).valid_encoding?
  end
  obj
end

def reference(query)
  { 'ok' => check_utf8(Rack::Utils.parse_nested_query(query)) }
rescue InvalidUtf8
  { 'error' => 'invalid_utf8', 'message' => '' }
rescue StandardError => e
  { 'error' => e.class.name, 'message' => e.message.dup.force_encoding(Encoding::UTF_8).scrub }
end

$stdout.sync = false
$stdin.each_line do |line|
  query = [line.strip].pack('H*').force_encoding(Encoding::BINARY)
  puts JSON.generate(reference(query), max_nesting: false)
end
