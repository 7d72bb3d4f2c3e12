/// The dashboard served at `/`: one self-contained HTML page (style, markup and script inline), compiled
/// into the binary so that it needs no files beside it and no network at run time. Hand-written vanilla
/// JavaScript and SVG; edit the three parts in `DashboardStyle.swift`, `DashboardBody.swift` and
/// `DashboardScript.swift`. When it has drawn every view it sets `document.body.dataset.chartDrawn`.
enum DashboardPage {
    static let html = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>eddy</title>
        <link rel="icon" href="data:,">
        <style>
        \(style)
        </style>
        </head>
        <body>
        \(body)
        <script>
        \(script)
        </script>
        </body>
        </html>
        """
}
