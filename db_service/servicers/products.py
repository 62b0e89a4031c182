"""Product RPCs."""

from __future__ import annotations

from db_service.calls import Context
from db_service.servicers import convert
from db_service.servicers.base import ServicerBase
from db_service.servicers.translate import translate_errors
from protos import db_service_pb2 as pb

_OPTIONAL = ("name", "description", "category", "price", "slogan", "stock")


class ProductRpcs(ServicerBase):
    async def GetProduct(self, request: pb.GetProductRequest, context: Context) -> pb.Product:
        async with translate_errors(context):
            return convert.product_view(
                await self._s.products.get_product(request.id), pb.Product()
            )

    async def GetProductsByIds(
        self, request: pb.GetProductsByIdsRequest, context: Context
    ) -> pb.ProductList:
        async with translate_errors(context):
            views = await self._s.products.get_products_by_ids(request.ids)
            reply = pb.ProductList()
            # Built in place: a list of messages passed to ProductList would be copied.
            add = reply.products.add
            for view in views:
                convert.product_view(view, add())
            return reply

    async def ListProducts(
        self, request: pb.ListProductsRequest, context: Context
    ) -> pb.ListProductsResponse:
        async with translate_errors(context):
            page = await self._s.products.list_products(
                page_size=request.page_size, page_token=request.page_token, offset=request.offset
            )
            return pb.ListProductsResponse(
                products=[convert.product(p) for p in page.items],
                next_page_token=page.next_page_token,
            )

    async def CreateProduct(self, request: pb.CreateProductRequest, context: Context) -> pb.Product:
        async with translate_errors(context):
            caller = await self._caller(context)
            product = await self._s.products.create_product(
                caller,
                name=request.name,
                description=request.description,
                category=request.category,
                price=request.price,
                slogan=request.slogan,
                stock=request.stock,
            )
            return convert.product(product)

    async def UpdateProduct(self, request: pb.UpdateProductRequest, context: Context) -> pb.Product:
        async with translate_errors(context):
            caller = await self._caller(context)
            fields = {f: getattr(request, f) for f in _OPTIONAL if request.HasField(f)}
            product = await self._s.products.update_product(caller, request.id, **fields)
            return convert.product(product)
