"""The request side: what a gateway process runs (the Starlette app, its routes, credentials and event streams).

It verifies, parses, records and acknowledges; the work itself runs on the work side (gateway.work), which this
package never imports, and the other way round. Both build on the shared core at gateway/'s top level.
"""
