"""What the gateway can do, shared by GraphQL resolvers and REST routes (one code path each)."""
