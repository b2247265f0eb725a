# A Godot 4 node that talks to `dialogue serve` with HTTPRequest.
# Add it to a scene, set `base_url`, `token` and `policy`, then call `say("hello")`;
# connect to `replied(turn)` for the reply (turn.text, turn.lines, turn.audio, turn.state).
extends Node

signal replied(turn: Dictionary)
signal failed(code: String, message: String)

@export var base_url := "http://127.0.0.1:8000"
@export var token := ""
@export var policy := "blacksmith"

var session_id := ""
var _http := HTTPRequest.new()


func _ready() -> void:
	add_child(_http)


func start(state: Dictionary = {}) -> void:
	var body := {"state": state} if not state.is_empty() else {}
	var result = await _request("/v1/policies/%s/sessions" % policy, HTTPClient.METHOD_POST, body)
	if result != null:
		session_id = result["id"]


func say(message: String) -> void:
	if session_id == "":
		await start()
	# The same key on a retry returns the turn the server already took.
	var key := "%s-%d-%d" % [session_id, Time.get_ticks_usec(), randi()]
	var turn = await _request("/v1/sessions/%s/turns" % session_id, HTTPClient.METHOD_POST,
		{"message": message}, ["Idempotency-Key: " + key])
	if turn != null:
		replied.emit(turn)


func _request(path: String, method: int, body: Dictionary, extra: Array = []):
	var headers := PackedStringArray(["Content-Type: application/json", "Accept: application/json"] + extra)
	if token != "":
		headers.append("Authorization: Bearer " + token)
	var error := _http.request(base_url + path, headers, method, JSON.stringify(body))
	if error != OK:
		failed.emit("request_failed", "HTTPRequest error %d" % error)
		return null
	var response = await _http.request_completed  # [result, status, headers, body]
	var data = JSON.parse_string(response[3].get_string_from_utf8())
	if response[1] >= 400 or data == null:
		var problem = data["error"] if data is Dictionary and data.has("error") else {"code": "http_error", "message": str(response[1])}
		failed.emit(problem["code"], problem["message"])
		return null
	return data
