-- Run once by the postgres image on an empty data volume: the Prefect and MLflow databases beside the catalog.
CREATE DATABASE wanflow_prefect OWNER wanflow;
CREATE DATABASE wanflow_mlflow OWNER wanflow;
