"""IBP step 3, aligning resources and capacity: the resource map (s3_resources.resource_map) and the estimated
cost of activity at national unit costs (s3_resources.activity_costs)."""
