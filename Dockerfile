FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY broker ./broker
COPY workers ./workers
COPY web ./web
COPY switchboard ./switchboard
COPY examples ./examples
RUN pip install --no-cache-dir .
USER nobody
EXPOSE 8080
CMD ["switchboard", "web", "--port", "8080"]
