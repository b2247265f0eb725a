// A Unity MonoBehaviour that talks to `dialogue serve` with UnityWebRequest.
// Attach it to an NPC, set baseUrl, token and policy, then StartCoroutine(npc.Say("hello", turn => ...)).
using System;
using System.Collections;
using System.Text;
using UnityEngine;
using UnityEngine.Networking;

public class DialogueNpc : MonoBehaviour
{
    public string baseUrl = "http://127.0.0.1:8000";
    public string token = "";
    public string policy = "blacksmith";
    public string sessionId = "";

    [Serializable] public class Line { public string id; public string text; public string audio; }
    [Serializable] public class Turn { public int index; public string reply_id; public string text; public Line[] lines; public string node; public bool ended; public bool fallback; }
    [Serializable] class Session { public string id; }
    [Serializable] class Message { public string message; }
    [Serializable] public class Problem { public string code; public string message; public int status; }
    [Serializable] class ErrorBody { public Problem error; }

    public IEnumerator StartSession()
    {
        yield return Send("/v1/policies/" + policy + "/sessions", "{}", null,
            json => sessionId = JsonUtility.FromJson<Session>(json).id, LogProblem);
    }

    public IEnumerator Say(string message, Action<Turn> onReply, Action<Problem> onError = null)
    {
        if (sessionId == "") yield return StartSession();
        // The same key on a retry returns the turn the server already took.
        string key = Guid.NewGuid().ToString();
        string body = JsonUtility.ToJson(new Message { message = message });
        yield return Send("/v1/sessions/" + sessionId + "/turns", body, key,
            json => onReply(JsonUtility.FromJson<Turn>(json)), onError ?? LogProblem);
    }

    static void LogProblem(Problem p) => Debug.LogWarning($"dialogue: {p.code} ({p.status}): {p.message}");

    IEnumerator Send(string path, string json, string idempotencyKey, Action<string> onOk, Action<Problem> onError)
    {
        using var request = new UnityWebRequest(baseUrl + path, "POST");
        request.uploadHandler = new UploadHandlerRaw(Encoding.UTF8.GetBytes(json));
        request.downloadHandler = new DownloadHandlerBuffer();
        request.SetRequestHeader("Content-Type", "application/json");
        if (token != "") request.SetRequestHeader("Authorization", "Bearer " + token);
        if (idempotencyKey != null) request.SetRequestHeader("Idempotency-Key", idempotencyKey);
        yield return request.SendWebRequest();
        string text = request.downloadHandler.text;
        if (request.result == UnityWebRequest.Result.Success) { onOk(text); yield break; }
        var problem = string.IsNullOrEmpty(text) ? null : JsonUtility.FromJson<ErrorBody>(text)?.error;
        onError(problem ?? new Problem { code = "request_failed", message = request.error, status = (int)request.responseCode });
    }
}
