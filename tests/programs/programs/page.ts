export function page(name: string): string {
  return `<!doctype html><title>Hi</title><h1>Hello, ${name.replace(/[<&]/g, "")}!</h1>`;
}
