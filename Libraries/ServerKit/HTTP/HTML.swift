import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Small HTML pages (the browser-facing pages of the services).
public enum HTML {
    public static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "'", with: "&#39;")
    }

    /// A complete page; `body` is HTML already escaped where needed.
    public static func page(
        title: String, body: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]
    ) -> Response {
        let html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title))</title>
            <style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}table{border-collapse:collapse}
            td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}iframe{width:100%;height:70vh;border:1px solid #ccc}
            .error{color:#a00}</style></head>
            <body>\(body)</body></html>
            """
        var fields = headers
        fields[.contentType] = "text/html; charset=utf-8"
        fields[.cacheControl] = "no-store"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: html)))
    }
}
